#include "uce/core/dataframe.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_map>

namespace uce {

const char* columnKindName(ColumnKind kind) {
  switch (kind) {
    case ColumnKind::String: return "string";
    case ColumnKind::Categorical: return "categorical";
    case ColumnKind::Float: return "float";
    case ColumnKind::Int: return "int";
    case ColumnKind::Bool: return "bool";
  }
  return "unknown";
}

size_t Column::size() const {
  switch (kind) {
    case ColumnKind::String: return strings.size();
    case ColumnKind::Categorical: return codes.size();
    case ColumnKind::Float: return floats.size();
    case ColumnKind::Int: return ints.size();
    case ColumnKind::Bool: return bools.size();
  }
  return 0;
}

std::string Column::valueAsString(size_t i) const {
  if (!missing.empty() && missing[i]) return "";
  switch (kind) {
    case ColumnKind::String: return strings[i];
    case ColumnKind::Categorical:
      return codes[i] < 0 || static_cast<size_t>(codes[i]) >= categories.size()
                 ? std::string()
                 : categories[static_cast<size_t>(codes[i])];
    case ColumnKind::Float: {
      if (std::isnan(floats[i])) return "";
      std::string s = std::to_string(floats[i]);
      return s;
    }
    case ColumnKind::Int: return std::to_string(ints[i]);
    case ColumnKind::Bool: return bools[i] ? "True" : "False";
  }
  return "";
}

Column Column::makeStrings(std::string name, std::vector<std::string> v) {
  Column c; c.name = std::move(name); c.kind = ColumnKind::String; c.strings = std::move(v); return c;
}
Column Column::makeFloats(std::string name, std::vector<double> v) {
  Column c; c.name = std::move(name); c.kind = ColumnKind::Float; c.floats = std::move(v); return c;
}
Column Column::makeInts(std::string name, std::vector<int64_t> v) {
  Column c; c.name = std::move(name); c.kind = ColumnKind::Int; c.ints = std::move(v); return c;
}
Column Column::makeBools(std::string name, std::vector<uint8_t> v) {
  Column c; c.name = std::move(name); c.kind = ColumnKind::Bool; c.bools = std::move(v); return c;
}
Column Column::makeCategorical(std::string name, const std::vector<std::string>& labels,
                               bool sortCategories) {
  Column c;
  c.name = std::move(name);
  c.kind = ColumnKind::Categorical;
  std::unordered_map<std::string, int32_t> code;
  for (const auto& l : labels)
    if (code.emplace(l, 0).second) c.categories.push_back(l);
  if (sortCategories) std::sort(c.categories.begin(), c.categories.end());
  for (size_t i = 0; i < c.categories.size(); ++i) code[c.categories[i]] = static_cast<int32_t>(i);
  c.codes.reserve(labels.size());
  for (const auto& l : labels) c.codes.push_back(code[l]);
  return c;
}

const Column* DataFrame::find(const std::string& name) const {
  for (const auto& c : columns)
    if (c.name == name) return &c;
  return nullptr;
}
Column* DataFrame::find(const std::string& name) {
  for (auto& c : columns)
    if (c.name == name) return &c;
  return nullptr;
}

void DataFrame::set(Column c) {
  if (c.size() != rows())
    throw std::invalid_argument("column '" + c.name + "' has " + std::to_string(c.size()) +
                                " values for " + std::to_string(rows()) + " rows");
  if (Column* old = find(c.name)) *old = std::move(c);
  else columns.push_back(std::move(c));
}

}  // namespace uce
