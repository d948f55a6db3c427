// The registry client arrives with issue 4; this keeps the target (and its link edges) real.
namespace kiste::registry {}
