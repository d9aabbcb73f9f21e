#pragma once
// Small text helpers shared by the writers of CSV/JSON side files and the gene matchers.
#include <string>
#include <vector>

namespace uce {

// ASCII upper case: gene symbols are matched upper-cased, as the UCE release does.
std::string toUpper(std::string s);
// A CSV field, quoted (RFC 4180) only when it holds a comma, quote or line break.
std::string csvField(const std::string& s);
// The fields of one CSV line (RFC 4180 quoting; a trailing '\r' is dropped). Quoted fields
// may not span lines.
std::vector<std::string> csvSplit(const std::string& line);
// A JSON string literal with escapes.
std::string jsonQuote(const std::string& s);

}  // namespace uce
