#pragma once
// Line-by-line reading of plain or gzip-compressed text (Matrix Market, TSV, CSV), and the
// small parsing helpers the text readers share. Private to core.
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

namespace uce::text {

// Reads lines of any length from a plain or .gz file (zlib reads both transparently).
// Line endings "\n" and "\r\n" are stripped.
class LineReader {
 public:
  // Throws uce::Error(Io) naming the file when it cannot be opened.
  explicit LineReader(std::string path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Next line into `line`; false at the end of the file. Throws uce::Error(Truncated) when
  // the compressed stream is corrupt or ends early.
  bool next(std::string& line);
  // 1-based number of the line last returned by next() (0 before the first).
  int64_t lineNumber() const { return line_; }
  const std::string& path() const { return path_; }

 private:
  bool fill();
  std::string path_;
  gzFile file_ = nullptr;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  int64_t line_ = 0;
};

// True when the name ends with `suffix`, ignoring ASCII case.
bool endsWithNoCase(const std::string& name, const std::string& suffix);

// Splits one line at `sep`. Fields may be wrapped in double quotes (as R and pandas write
// them), with "" standing for a quote inside. Returns false on an unterminated quote.
bool splitFields(const std::string& line, char sep, std::vector<std::string>& out);

// Splits at runs of spaces/tabs (Matrix Market entry lines).
void splitWhitespace(const std::string& line, std::vector<std::string>& out);

// Whole-field number parsers, locale independent; surrounding spaces and a leading '+' are
// accepted. parseDouble accepts "nan"/"inf" (callers decide whether they are allowed).
bool parseDouble(const std::string& field, double& out);
bool parseInt(const std::string& field, int64_t& out);

// Shortens a field for an error message ("abc…" after 40 characters).
std::string quoteForMessage(const std::string& field);

}  // namespace uce::text
