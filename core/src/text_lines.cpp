#include "text_lines.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include "uce/core/error.h"

namespace uce::text {

namespace {
constexpr size_t kChunk = 1 << 16;
}

LineReader::LineReader(std::string path) : path_(std::move(path)), buf_(kChunk) {
  file_ = gzopen(path_.c_str(), "rb");
  if (!file_) fail(ErrorKind::Io, path_, std::string("cannot open: ") + std::strerror(errno));
  gzbuffer(file_, 1 << 17);
}

LineReader::~LineReader() {
  if (file_) gzclose(file_);
}

bool LineReader::fill() {
  if (eof_) return false;
  if (pos_ > 0) {  // keep the unread tail at the front of the buffer
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  if (buf_.size() - end_ < kChunk) buf_.resize(end_ + kChunk);
  int got = gzread(file_, buf_.data() + end_, static_cast<unsigned>(buf_.size() - end_));
  int err = Z_OK;
  const char* msg = gzerror(file_, &err);
  if (got < 0 || (err != Z_OK && err != Z_STREAM_END)) {
    std::string why = msg ? msg : "zlib error";
    if (why.compare(0, path_.size() + 2, path_ + ": ") == 0) why.erase(0, path_.size() + 2);
    fail(ErrorKind::Truncated, path_,
         "the compressed data is damaged or the file ends early" +
             (line_ > 0 ? " (after line " + std::to_string(line_) + ")" : std::string()) + ": " + why);
  }
  if (got == 0) {
    eof_ = true;
    return false;
  }
  end_ += static_cast<size_t>(got);
  return true;
}

bool LineReader::next(std::string& line) {
  size_t scanFrom = pos_;
  for (;;) {
    const char* begin = buf_.data() + scanFrom;
    const void* nl = std::memchr(begin, '\n', end_ - scanFrom);
    if (nl) {
      size_t at = static_cast<size_t>(static_cast<const char*>(nl) - buf_.data());
      size_t len = at - pos_;
      if (len > 0 && buf_[at - 1] == '\r') --len;
      line.assign(buf_.data() + pos_, len);
      pos_ = at + 1;
      ++line_;
      return true;
    }
    size_t scanned = end_ - pos_;
    if (!fill()) break;
    scanFrom = pos_ + scanned;  // fill() moved the unread tail to the front
  }
  if (pos_ == end_) return false;
  size_t len = end_ - pos_;  // last line without a trailing newline
  if (buf_[end_ - 1] == '\r') --len;
  line.assign(buf_.data() + pos_, len);
  pos_ = end_;
  ++line_;
  return true;
}

bool endsWithNoCase(const std::string& name, const std::string& suffix) {
  if (name.size() < suffix.size()) return false;
  size_t off = name.size() - suffix.size();
  for (size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(name[off + i])) !=
        std::tolower(static_cast<unsigned char>(suffix[i])))
      return false;
  return true;
}

bool splitFields(const std::string& line, char sep, std::vector<std::string>& out) {
  out.clear();
  size_t i = 0;
  const size_t n = line.size();
  for (;;) {
    std::string field;
    // Spaces before an opening quote are tolerated ("a", "b").
    size_t q = i;
    while (q < n && line[q] == ' ' && sep != ' ') ++q;
    if (q < n && line[q] == '"') {
      i = q + 1;
      bool closed = false;
      while (i < n) {
        if (line[i] == '"') {
          if (i + 1 < n && line[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          closed = true;
          ++i;
          break;
        }
        field += line[i++];
      }
      if (!closed) return false;
      while (i < n && line[i] != sep) ++i;  // text after the closing quote is ignored
    } else {
      size_t e = line.find(sep, i);
      if (e == std::string::npos) e = n;
      field.assign(line, i, e - i);
      i = e;
    }
    out.push_back(std::move(field));
    if (i >= n) break;
    ++i;  // skip the separator
    if (i == n) {  // trailing separator: one more empty field
      out.emplace_back();
      break;
    }
  }
  return true;
}

void splitWhitespace(const std::string& line, std::vector<std::string>& out) {
  out.clear();
  size_t i = 0;
  const size_t n = line.size();
  while (i < n) {
    while (i < n && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= n) break;
    size_t s = i;
    while (i < n && line[i] != ' ' && line[i] != '\t') ++i;
    out.emplace_back(line, s, i - s);
  }
}

namespace {
// Trims spaces and one leading '+'; returns false if nothing is left.
bool trimNumber(const std::string& field, const char*& b, const char*& e) {
  b = field.data();
  e = b + field.size();
  while (b < e && (*b == ' ' || *b == '\t')) ++b;
  while (e > b && (e[-1] == ' ' || e[-1] == '\t')) --e;
  if (b < e && *b == '+') ++b;
  return b < e;
}
}  // namespace

bool parseDouble(const std::string& field, double& out) {
  const char *b, *e;
  if (!trimNumber(field, b, e)) return false;
  auto r = std::from_chars(b, e, out);
  if (r.ec == std::errc::result_out_of_range) {
    // Magnitude beyond double: keep the sign, let the finiteness check report it.
    out = (*b == '-') ? -HUGE_VAL : HUGE_VAL;
    return r.ptr == e;
  }
  return r.ec == std::errc() && r.ptr == e;
}

bool parseInt(const std::string& field, int64_t& out) {
  const char *b, *e;
  if (!trimNumber(field, b, e)) return false;
  auto r = std::from_chars(b, e, out);
  return r.ec == std::errc() && r.ptr == e;
}

std::string quoteForMessage(const std::string& field) {
  std::string s = field.size() > 40 ? field.substr(0, 40) + "..." : field;
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  return "'" + s + "'";
}

}  // namespace uce::text
