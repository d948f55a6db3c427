// The command line's mistakes, through real CLI11 apps shaped like kiste's.
#include "cli_args.hpp"

#include <gtest/gtest.h>

namespace kiste::cli {
namespace {

// A small kiste: --root, build (CONTEXT, -t/--tag, --target, -f), run (prefix command with
// --rm, -i, -t, -e), image {ls, rm} and images.
class MiniKiste : public ::testing::Test {
 protected:
  void SetUp() override {
    app_.add_option("--root", root_);
    app_.require_subcommand(1);
    auto* build = app_.add_subcommand("build", "");
    build->add_option("CONTEXT", context_);
    build->add_option("-t,--tag", tags_);
    build->add_option("--target", target_);
    build->add_option("-f,--file", file_);
    build->callback([this] { ran_ = "build"; });
    run_ = app_.add_subcommand("run", "");
    run_->prefix_command();
    run_->add_flag("--rm", rm_);
    run_->add_flag("-i,--interactive", flag_);
    run_->add_flag("-t,--tty", flag_);
    run_->add_option("-e,--env", env_)->allow_extra_args(false);
    auto* image = app_.add_subcommand("image", "");
    image->require_subcommand(1);
    image->add_subcommand("ls", "")->alias("list");
    image->add_subcommand("rm", "");
    app_.add_subcommand("images", "")->add_flag("-q,--quiet", flag_);
  }

  // The one-line message for a rejected command line; "" when CLI11 accepted it.
  std::string rejected(const std::string& line) {
    try {
      app_.parse(line, false);
    } catch (const CLI::ParseError&) {
      return explain_rejected(app_).value_or("(no explanation)");
    }
    return "";
  }

  CLI::App app_{"mini"};
  CLI::App* run_ = nullptr;
  std::string root_, context_, target_, file_, ran_;
  std::vector<std::string> tags_, env_;
  bool rm_ = false, flag_ = false;
};

TEST_F(MiniKiste, UnknownFlagOfACommandIsNamedWithASuggestion) {
  EXPECT_EQ(rejected("build --tga x DIR"), "unknown flag --tga (did you mean --tag?)");
  EXPECT_EQ(ran_, "");  // the command did not run
  EXPECT_EQ(rejected("build --targte=x ."), "unknown flag --targte (did you mean --target?)");
}

TEST_F(MiniKiste, UnknownFlagWithoutANearNameSaysWhereToLook) {
  EXPECT_EQ(rejected("images --zzzzzz"), "unknown flag --zzzzzz (see `kiste images --help`)");
  EXPECT_EQ(rejected("image ls --zzzzzz"), "unknown flag --zzzzzz (see `kiste image ls --help`)");
}

TEST_F(MiniKiste, DockerFlagKisteLacksIsSaidSo) {
  EXPECT_EQ(rejected("build --squash ."),
            "--squash: not supported by kiste yet (each step is its own layer)");
}

TEST_F(MiniKiste, GlobalFlagsAreCandidatesToo) {
  EXPECT_EQ(rejected("images --rot /x"), "unknown flag --rot (did you mean --root?)");
}

TEST_F(MiniKiste, ExtraArgumentIsNamed) {
  EXPECT_EQ(rejected("build a b"), "build: unexpected argument b (see `kiste build --help`)");
}

TEST_F(MiniKiste, UnknownSubcommandOfAGroupGetsASuggestion) {
  EXPECT_EQ(rejected("image lss"), "unknown command image lss (did you mean image ls?)");
  EXPECT_EQ(rejected("image lits"), "unknown command image lits (did you mean image list?)");
}

TEST_F(MiniKiste, RunFlagsBeforeTheImage) {
  auto leading = [this](const std::string& line) {
    app_.parse(line, false);
    return unknown_leading_flag(*run_).value_or("");
  };
  EXPECT_EQ(leading("run --rn busybox true"), "unknown flag --rn (did you mean --rm?)");
  EXPECT_EQ(leading("run --detach-keys x busybox sleep 5"),
            "--detach-keys: not supported by kiste yet (detached containers have run -d, ps, "
            "logs, attach, exec, cp, start, restart, top, stats, port, stop, kill, wait and rm so far)");
  EXPECT_EQ(leading("run --cidfile f busybox"),
            "--cidfile: not supported by kiste yet (`run -d` prints the container's id)");
  EXPECT_EQ(leading("run --expose 80 busybox"),
            "--expose: not supported by kiste yet (kiste's networks have `--network NAME`, `--ip`, "
            "`--network-alias`, `-p`, `-P`, `--dns*` and `--add-host` so far)");
  // Combined short flags: the one kiste lacks is named.
  EXPECT_EQ(leading("run -ait busybox sh").substr(0, 3), "-a:");
  EXPECT_EQ(leading("run -itl busybox sh").substr(0, 3), "-l:");
  EXPECT_EQ(leading("run --sysctl=a=b busybox").substr(0, 9), "--sysctl:");
  // Known flags, then the image and its command (whose flags are the command's).
  EXPECT_EQ(leading("run --rm -it -e A=1 busybox ls -l"), "");
  EXPECT_TRUE(rm_);
  EXPECT_EQ(run_->remaining(), (std::vector<std::string>{"busybox", "ls", "-l"}));
}

TEST(UnknownCommand, SuggestsOrNamesWhatDockerHasAndKisteLacks) {
  std::vector<std::string> cmds{"build", "images", "image", "run", "pull", "push", "inspect"};
  EXPECT_EQ(unknown_command_message("", "biuld", cmds),
            "unknown command biuld (did you mean build?)");
  EXPECT_EQ(unknown_command_message("", "pause", cmds),
            "pause: not supported by kiste yet (detached containers have run -d, ps, logs, attach, "
            "exec, cp, start, restart, top, stats, port, stop, kill, wait and rm so far)");
  EXPECT_EQ(unknown_command_message("", "frobnicate", cmds),
            "unknown command frobnicate (see `kiste --help`)");
  EXPECT_NE(unknown_command_message("", "history", cmds).find("kiste inspect"), std::string::npos);
}

TEST(FlagOf, StripsValuesAndSplitsShortFlags) {
  std::vector<std::string> known{"-i", "-t", "--rm"};
  EXPECT_EQ(flag_of("--name=web", known), "--name");
  EXPECT_EQ(flag_of("-dit", known), "-d");
  EXPECT_EQ(flag_of("-itd", known), "-d");
  EXPECT_EQ(flag_of("-p8080:80", known), "-p");
  EXPECT_EQ(flag_of("-q", known), "-q");
}

}  // namespace
}  // namespace kiste::cli
