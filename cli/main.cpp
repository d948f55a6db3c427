#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"kiste: build, move and run OCI images"};
  CLI11_PARSE(app, argc, argv);
  return 0;
}
