// Shortest decimal text of a double that reads back to the same double ("0.003", "1e-05"), for
// the resolved config, run-directory names and reports; and durations as "3m07s". It does not
// localise or pad numbers.
#pragma once
#include <string>

namespace muonlab {

// The fewest significant digits that strtod parses back to exactly `value`, in fixed notation
// for decimal exponents -4..15 ("0.003", "10", "0.0003") and scientific otherwise ("1e-05");
// "nan", "inf" and "-inf" for non-finite values.
std::string shortest_text(double value);

// "3m07s", or "1h05m" from an hour on, for ETAs and elapsed times (negative counts as 0).
std::string format_duration(double seconds);

// True if `text` is entirely a decimal number; stores it in `value`.
bool parse_number(const std::string& text, double& value);

}  // namespace muonlab
