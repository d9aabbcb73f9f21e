#include "uce/core/json.h"

#include <cctype>
#include <cstdlib>
#include <cstring>

#include "uce/core/error.h"

namespace uce {
namespace {

class JsonParser {
 public:
  JsonParser(const std::string& text, const std::string& path, const std::string& what, const std::string& hint)
      : t_(text), path_(path), what_(what), hint_(hint) {}
  Json parseDocument() {
    Json v = value(0);
    ws();
    if (p_ != t_.size()) bad("unexpected text after the end");
    return v;
  }

 private:
  [[noreturn]] void bad(const std::string& what) {
    fail(ErrorKind::Format, path_, "not a valid " + what_ + " (" + what + " at byte " + std::to_string(p_) + ")" + hint_);
  }
  void ws() {
    while (p_ < t_.size() && std::isspace(static_cast<unsigned char>(t_[p_]))) ++p_;
  }
  bool lit(const char* s) {
    const size_t n = std::strlen(s);
    if (t_.compare(p_, n, s) == 0) { p_ += n; return true; }
    return false;
  }
  Json value(int depth) {
    if (depth > 64) bad("nesting too deep");
    ws();
    if (p_ >= t_.size()) bad("unexpected end");
    Json v;
    const char c = t_[p_];
    if (c == '{') {
      v.kind = Json::Kind::Object;
      ++p_;
      ws();
      if (p_ < t_.size() && t_[p_] == '}') { ++p_; return v; }
      for (;;) {
        ws();
        if (p_ >= t_.size() || t_[p_] != '"') bad("expected a key");
        std::string key = string();
        ws();
        if (p_ >= t_.size() || t_[p_] != ':') bad("expected ':'");
        ++p_;
        v.fields.emplace_back(std::move(key), value(depth + 1));
        ws();
        if (p_ < t_.size() && t_[p_] == ',') { ++p_; continue; }
        if (p_ < t_.size() && t_[p_] == '}') { ++p_; return v; }
        bad("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.kind = Json::Kind::Array;
      ++p_;
      ws();
      if (p_ < t_.size() && t_[p_] == ']') { ++p_; return v; }
      for (;;) {
        v.items.push_back(value(depth + 1));
        ws();
        if (p_ < t_.size() && t_[p_] == ',') { ++p_; continue; }
        if (p_ < t_.size() && t_[p_] == ']') { ++p_; return v; }
        bad("expected ',' or ']'");
      }
    }
    if (c == '"') { v.kind = Json::Kind::String; v.str = string(); return v; }
    if (lit("true")) { v.kind = Json::Kind::Bool; v.b = true; return v; }
    if (lit("false")) { v.kind = Json::Kind::Bool; return v; }
    if (lit("null")) return v;
    const char* start = t_.c_str() + p_;
    char* end = nullptr;
    v.num = std::strtod(start, &end);
    if (end == start) bad("unexpected character");
    p_ += static_cast<size_t>(end - start);
    v.kind = Json::Kind::Number;
    return v;
  }
  std::string string() {
    ++p_;  // opening quote
    std::string out;
    while (p_ < t_.size() && t_[p_] != '"') {
      char c = t_[p_++];
      if (c != '\\') { out += c; continue; }
      if (p_ >= t_.size()) bad("unterminated string");
      const char e = t_[p_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          if (p_ + 4 > t_.size()) bad("bad \\u escape");
          unsigned cp = static_cast<unsigned>(std::strtoul(t_.substr(p_, 4).c_str(), nullptr, 16));
          p_ += 4;
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default: bad("bad escape");
      }
    }
    if (p_ >= t_.size()) bad("unterminated string");
    ++p_;
    return out;
  }
  const std::string& t_;
  const std::string& path_;
  const std::string& what_;
  const std::string& hint_;
  size_t p_ = 0;
};

}  // namespace

Json parseJson(const std::string& text, const std::string& file, const std::string& what, const std::string& hint) {
  return JsonParser(text, file, what, hint).parseDocument();
}

}  // namespace uce
