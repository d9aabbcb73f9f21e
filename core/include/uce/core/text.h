#pragma once
// Small text helpers shared by the writers of CSV/JSON side files and the gene matchers.
#include <string>

namespace uce {

// ASCII upper case: gene symbols are matched upper-cased, as the UCE release does.
std::string toUpper(std::string s);
// A CSV field, quoted (RFC 4180) only when it holds a comma, quote or line break.
std::string csvField(const std::string& s);
// A JSON string literal with escapes.
std::string jsonQuote(const std::string& s);

}  // namespace uce
