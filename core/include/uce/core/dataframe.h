#pragma once
// Column-oriented table for obs / var, as AnnData stores them.
#include <cstdint>
#include <string>
#include <vector>

namespace uce {

enum class ColumnKind { String, Categorical, Float, Int, Bool };
const char* columnKindName(ColumnKind kind);

struct Column {
  std::string name;
  ColumnKind kind = ColumnKind::String;
  // Exactly one payload is used, chosen by kind:
  std::vector<std::string> strings;     // String
  std::vector<std::string> categories;  // Categorical: category labels
  std::vector<int32_t> codes;           // Categorical: index into categories, -1 = missing
  bool ordered = false;                 // Categorical
  std::vector<double> floats;           // Float (NaN = missing)
  std::vector<int64_t> ints;            // Int
  std::vector<uint8_t> bools;           // Bool (0/1)
  std::vector<uint8_t> missing;         // optional, nullable Int/Bool: 1 = missing; empty = none

  size_t size() const;
  // Text of row i for display / export ("" for missing).
  std::string valueAsString(size_t i) const;

  static Column makeStrings(std::string name, std::vector<std::string> v);
  static Column makeFloats(std::string name, std::vector<double> v);
  static Column makeInts(std::string name, std::vector<int64_t> v);
  static Column makeBools(std::string name, std::vector<uint8_t> v);
  // Builds categories in first-seen order (or sorted when sortCategories).
  static Column makeCategorical(std::string name, const std::vector<std::string>& labels,
                                bool sortCategories = true);
};

struct DataFrame {
  std::string indexName = "_index";  // name of the index column in the file
  std::vector<std::string> index;    // row names (obs_names / var_names)
  std::vector<Column> columns;       // in column-order

  size_t rows() const { return index.size(); }
  const Column* find(const std::string& name) const;
  Column* find(const std::string& name);
  // Adds or replaces a column (size must equal rows()).
  void set(Column c);
};

}  // namespace uce
