#pragma once
// A small JSON reader for the project's own metadata files (classifier models, atlas.json):
// objects (keys in file order), arrays, strings (with \u escapes), numbers, true/false/null.
#include <string>
#include <utility>
#include <vector>

namespace uce {

struct Json {
  enum class Kind { Null, Bool, Number, String, Array, Object } kind = Kind::Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> fields;
  const Json* get(const std::string& key) const {
    for (const auto& kv : fields)
      if (kv.first == key) return &kv.second;
    return nullptr;
  }
};

// Parses one JSON document. Errors are uce::Error(Format) naming `file`: "not a valid <what>
// (<reason> at byte N)<hint>".
Json parseJson(const std::string& text, const std::string& file, const std::string& what,
               const std::string& hint = "");

}  // namespace uce
