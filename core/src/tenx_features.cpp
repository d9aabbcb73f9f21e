#include "tenx_features.h"

#include <unordered_map>
#include <unordered_set>

#include "uce/core/error.h"

namespace uce {

static const char* kGeneExpression = "Gene Expression";

FeatureSelection selectGeneExpression(const FeatureTable& t, const std::string& file) {
  FeatureSelection sel;
  const size_t n = t.names.size();
  sel.kept = static_cast<int64_t>(n);
  if (t.types.empty()) return sel;
  std::map<std::string, int64_t> dropped;  // type -> count, sorted for a stable message
  int64_t genes = 0;
  for (const auto& type : t.types) {
    if (type == kGeneExpression) ++genes;
    else ++dropped[type];
  }
  if (dropped.empty()) return sel;
  if (genes == 0) {
    std::string kinds;
    for (const auto& [type, count] : dropped) kinds += (kinds.empty() ? "" : ", ") + type;
    fail(ErrorKind::Empty, file,
         "no 'Gene Expression' features (the file has only: " + kinds +
             "); UCE needs gene expression counts");
  }
  sel.newIndex.assign(n, -1);
  int32_t next = 0;
  for (size_t i = 0; i < n; ++i)
    if (t.types[i] == kGeneExpression) sel.newIndex[i] = next++;
  sel.kept = next;
  for (const auto& [type, count] : dropped)
    sel.note += (sel.note.empty() ? "" : ", ") + std::to_string(count) + " '" + type + "'";
  sel.note = "kept the " + std::to_string(genes) + " 'Gene Expression' features; dropped " +
             sel.note + " features";
  return sel;
}

DataFrame featureVar(const FeatureTable& t, const FeatureSelection& sel) {
  auto pick = [&](const std::vector<std::string>& v) {
    if (sel.newIndex.empty()) return v;
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(sel.kept));
    for (size_t i = 0; i < v.size(); ++i)
      if (sel.newIndex[i] >= 0) out.push_back(v[i]);
    return out;
  };
  DataFrame var;
  var.index = pick(t.names);
  var.set(Column::makeStrings("gene_ids", pick(t.ids)));
  if (!t.types.empty()) var.set(Column::makeCategorical("feature_types", pick(t.types)));
  if (!t.genome.empty()) var.set(Column::makeCategorical("genome", pick(t.genome)));
  return var;
}

int64_t makeNamesUnique(std::vector<std::string>& names) {
  std::unordered_set<std::string> taken(names.begin(), names.end());
  if (taken.size() == names.size()) return 0;
  std::unordered_set<std::string> seen;
  std::unordered_map<std::string, int64_t> counter;
  int64_t changed = 0;
  for (auto& name : names) {
    if (seen.insert(name).second) continue;  // first occurrence keeps its name
    int64_t& c = counter[name];
    std::string candidate;
    do candidate = name + "-" + std::to_string(++c);
    while (taken.count(candidate));
    taken.insert(candidate);
    name = std::move(candidate);
    ++changed;
  }
  return changed;
}

}  // namespace uce
