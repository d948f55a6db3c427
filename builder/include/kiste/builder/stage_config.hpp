#pragma once
// How each metadata-only instruction changes a stage's image config (ENV, ARG, LABEL, EXPOSE,
// VOLUME, WORKDIR, USER, CMD, ENTRYPOINT, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER).
// Pure: no I/O. These steps add history entries with empty_layer, never layers.
#include <map>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/builder/containerfile.hpp>
#include <kiste/builder/shell_words.hpp>
#include <kiste/image/image_config.hpp>

namespace kiste::builder {

struct StageConfig {
  image::ImageConfig config;
  VarMap args;                  // ARGs declared in this stage, with their values
  bool cmd_set_here = false;    // CMD given in this stage (ENTRYPOINT then keeps it)
  char escape = '\\';

  // Variables for substitution: the stage's ARGs, overridden by its ENV.
  [[nodiscard]] VarMap scope() const;
  // The shell for shell-form commands (SHELL, default ["/bin/sh", "-c"]).
  [[nodiscard]] std::vector<std::string> shell() const;
  // The value of an ENV variable, if set.
  [[nodiscard]] std::optional<std::string> env(std::string_view key) const;
  void set_env(const std::string& key, const std::string& value);
};

struct ArgSources {
  const std::map<std::string, std::string>* build_args = nullptr;  // --build-arg
  const VarMap* global_args = nullptr;                              // ARG before FROM
  const VarMap* predefined = nullptr;                               // TARGETOS, …
};

// Applies a metadata-only instruction; returns the history `created_by` text.
[[nodiscard]] Result<std::string> apply_metadata(StageConfig& st, const Instruction& ins,
                                                 const ArgSources& sources);

}  // namespace kiste::builder
