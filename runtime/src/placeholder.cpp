// The runtime arrives with issue 5.
namespace kiste::runtime {}
