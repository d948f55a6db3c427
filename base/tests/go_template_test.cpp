#include <gtest/gtest.h>

#include <kiste/base/go_template.hpp>
#include <nlohmann/json.hpp>

namespace kiste {
namespace {

const nlohmann::json kImage = nlohmann::json::parse(R"({
  "Id": "sha256:abc",
  "RepoTags": ["busybox:1", "busybox:latest"],
  "Created": "1970-01-01T00:00:00Z",
  "Size": 1234,
  "Config": {"Env": ["PATH=/bin", "A=b c"], "Cmd": ["sh"], "Labels": {"org.x": "y"},
             "Entrypoint": null},
  "RootFS": {"Type": "layers", "Layers": ["sha256:1", "sha256:2"]}
})");

std::string render(std::string_view t, const nlohmann::json& data = kImage) {
  auto tpl = GoTemplate::parse(t);
  if (!tpl) return "PARSE: " + tpl.error().to_string();
  auto out = tpl->render(data);
  if (!out) return "RENDER: " + out.error().to_string();
  return *out;
}

TEST(GoTemplate, FieldsAndLiteralText) {
  EXPECT_EQ(render("{{.Id}}"), "sha256:abc");
  EXPECT_EQ(render("id={{.Id}} size={{.Size}}!"), "id=sha256:abc size=1234!");
  EXPECT_EQ(render("{{ .RootFS.Type }}"), "layers");
  EXPECT_EQ(render("no actions"), "no actions");
  EXPECT_EQ(render(""), "");
}

TEST(GoTemplate, SlicesAndMapsPrintLikeGo) {
  EXPECT_EQ(render("{{.Config.Env}}"), "[PATH=/bin A=b c]");
  EXPECT_EQ(render("{{.Config.Labels}}"), "map[org.x:y]");
  EXPECT_EQ(render("{{.Config.Entrypoint}}"), "<nil>");
  EXPECT_EQ(render("{{.Missing}}"), "<no value>");
  EXPECT_EQ(render("{{.Missing.Deeper}}"), "<no value>");
}

TEST(GoTemplate, JsonIsCompactAndUnescaped) {
  EXPECT_EQ(render("{{json .RootFS}}"), R"({"Layers":["sha256:1","sha256:2"],"Type":"layers"})");
  EXPECT_EQ(render("{{json .Config.Env}}"), R"(["PATH=/bin","A=b c"])");
  EXPECT_EQ(render("{{json .Missing}}"), "null");
  EXPECT_EQ(render("{{json .}}", nlohmann::json::parse(R"({"a":"<&>"})")), R"({"a":"<&>"})");
}

TEST(GoTemplate, IndexJoinAndCase) {
  EXPECT_EQ(render("{{index .RepoTags 0}}"), "busybox:1");
  EXPECT_EQ(render("{{index .RepoTags 1}}"), "busybox:latest");
  EXPECT_EQ(render("{{index .Config.Labels \"org.x\"}}"), "y");
  EXPECT_EQ(render("{{index .Config.Labels \"none\"}}"), "<no value>");
  EXPECT_EQ(render("{{join .Config.Env \",\"}}"), "PATH=/bin,A=b c");
  EXPECT_EQ(render("{{upper .RootFS.Type}}"), "LAYERS");
  EXPECT_EQ(render("{{len .RepoTags}}"), "2");
}

TEST(GoTemplate, TrimMarkers) {
  EXPECT_EQ(render("a  {{- .Size -}}  b"), "a1234b");
}

TEST(GoTemplate, RuntimeErrorsNameTheAction) {
  EXPECT_EQ(render("{{index .RepoTags 5}}"),
            "RENDER: template `{{index .RepoTags 5}}`: index out of range: 5");
  EXPECT_EQ(render("{{.Id.Short}}"),
            "RENDER: template `{{.Id.Short}}`: can't evaluate field Short in type string");
}

TEST(GoTemplate, UnsupportedSyntaxIsRejectedAtParse) {
  EXPECT_EQ(render("{{range .RepoTags}}x{{end}}"),
            "PARSE: template `{{range .RepoTags}}`: `range` is not supported");
  EXPECT_EQ(render("{{.Id | printf \"%s\"}}"),
            "PARSE: template `{{.Id | printf \"%s\"}}`: pipes, variables and parentheses are not "
            "supported");
  EXPECT_EQ(render("{{nope .Id}}"), "PARSE: template `{{nope .Id}}`: function `nope` not defined");
  EXPECT_EQ(render("{{.Id"), "PARSE: template `{{.Id`: unclosed action");
  EXPECT_EQ(render("{{json}}"), "PARSE: template `{{json}}`: wrong number of arguments for json");
  EXPECT_EQ(render("{{.Id .Size}}"), "PARSE: template `{{.Id .Size}}`: `.Id` is not a function");
  EXPECT_EQ(render("{{}}"), "PARSE: template `{{}}`: empty action");
}

}  // namespace
}  // namespace kiste
