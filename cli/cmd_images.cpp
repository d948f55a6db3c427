#include "globals.hpp"

namespace kiste::cli {

void register_image_commands(CLI::App& app, Globals& g) {
  (void)app;
  (void)g;
}

}  // namespace kiste::cli
