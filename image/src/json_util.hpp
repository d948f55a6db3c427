#pragma once
// nlohmann stays private to image/: helpers for strict, non-throwing access.
#include <nlohmann/json.hpp>

#include <kiste/base/error.hpp>
#include <kiste/image/descriptor.hpp>

namespace kiste::image::detail {

using json = nlohmann::json;

// Parses without exceptions; Corrupt on malformed JSON.
[[nodiscard]] Result<json> parse_json(std::string_view bytes, std::string_view what);

// Optional typed fields: absent or null -> default; wrong type -> Corrupt naming the field.
[[nodiscard]] Result<std::string> get_string(const json& obj, const char* key, std::string_view what);
[[nodiscard]] Result<std::vector<std::string>> get_string_list(const json& obj, const char* key,
                                                               std::string_view what);
[[nodiscard]] Result<std::map<std::string, std::string>> get_string_map(const json& obj,
                                                                        const char* key,
                                                                        std::string_view what);

[[nodiscard]] Result<Descriptor> parse_descriptor(const json& j, std::string_view what);
[[nodiscard]] json descriptor_to_json(const Descriptor& d);

}  // namespace kiste::image::detail
