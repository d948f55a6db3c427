// fmt's compiled part, built once here. Debian's libfmt-dev ships fmt only as a shared library
// (every kiste start would pay its load) or header-only (FMT_HEADER_ONLY makes every unit that
// includes error.hpp compile fmt's whole formatting engine: ~4 s of CPU per unit at -O2 -g).
// Without FMT_HEADER_ONLY the headers declare that engine (fmt::vformat, …) and this unit
// defines it, as fmt's own src/format.cc does; the templates fmt declares extern are
// instantiated below.
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {

template auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;
template locale_ref::locale_ref(const std::locale& loc);
template auto locale_ref::get<std::locale>() const -> std::locale;
template auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template auto decimal_point_impl(locale_ref) -> char;
template auto thousands_sep_impl(locale_ref) -> thousands_sep_result<wchar_t>;
template auto decimal_point_impl(locale_ref) -> wchar_t;

}  // namespace detail
FMT_END_NAMESPACE
