// POSIX single-quote quoting of one shell word.
#include "src/shell_quote.h"

#include <cctype>

namespace muonlab {

std::string shell_quoted(const std::string& arg) {
  bool plain = !arg.empty();
  for (char c : arg)
    plain = plain && (std::isalnum(static_cast<unsigned char>(c)) ||
                      std::string("_-.,/=:+").find(c) != std::string::npos);
  if (plain) return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace muonlab
