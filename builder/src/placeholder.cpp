// The builder arrives with issue 6.
namespace kiste::builder {}
