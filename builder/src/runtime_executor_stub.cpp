// Used while the runtime part is not in the tree: RUN steps then fail with a clear error.
#include <kiste/builder/builder.hpp>

namespace kiste::builder {

std::unique_ptr<RunExecutor> make_runtime_executor(const RuntimeExecutorOptions&) {
  return nullptr;
}

}  // namespace kiste::builder
