#include "uce/core/inspect.h"

#include <cctype>
#include <cstdio>
#include <map>
#include <sstream>

#include "uce/core/error.h"

namespace uce {

static bool isEnsemblId(const std::string& s) {
  // ENS + optional species letters + G/T/P + >= 6 digits, optional ".version"
  if (s.size() < 10 || s.compare(0, 3, "ENS") != 0) return false;
  size_t i = 3;
  while (i < s.size() && std::isupper(static_cast<unsigned char>(s[i]))) ++i;
  if (i == 3 || s[i - 1] != 'G') return false;
  size_t digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  return digits >= 6 && (i == s.size() || s[i] == '.');
}

double ensemblFraction(const std::vector<std::string>& names) {
  if (names.empty()) return 0;
  size_t n = 0;
  for (const auto& s : names) n += isEnsemblId(s);
  return static_cast<double>(n) / static_cast<double>(names.size());
}

static std::vector<std::string> columnStrings(const Column& c) {
  std::vector<std::string> out;
  out.reserve(c.size());
  for (size_t i = 0; i < c.size(); ++i) out.push_back(c.valueAsString(i));
  return out;
}

GeneColumnGuess guessGeneColumn(const DataFrame& var) {
  struct Cand { std::string column; std::vector<std::string> values; };
  std::vector<Cand> cands{{"", var.index}};
  for (const auto& c : var.columns)
    if (c.kind == ColumnKind::String || c.kind == ColumnKind::Categorical)
      cands.push_back({c.name, columnStrings(c)});
  static const char* preferred[] = {"gene_symbols", "gene_symbol", "feature_name", "gene_name",
                                    "gene_names", "symbol", "symbols", "gene"};
  GeneColumnGuess best;
  double bestScore = -1;
  for (const auto& cand : cands) {
    double ens = ensemblFraction(cand.values);
    size_t empty = 0;
    for (const auto& v : cand.values) empty += v.empty();
    double sym = cand.values.empty() ? 0
                 : 1.0 - ens - static_cast<double>(empty) / static_cast<double>(cand.values.size());
    double score = sym;
    for (const char* p : preferred)
      if (cand.column == p) score += 0.05;
    if (score > bestScore) {
      bestScore = score;
      best.column = cand.column;
      best.symbolFraction = sym;
      best.looksLike = sym >= 0.5 ? "symbols" : "ensembl";
    }
  }
  std::ostringstream r;
  r << (best.column.empty() ? "var_names" : "var['" + best.column + "']") << ": "
    << static_cast<int>(best.symbolFraction * 100 + 0.5) << "% of names look like gene symbols";
  if (best.looksLike != "symbols")
    r << "; no column holds gene symbols: map the Ensembl ids to symbols before embedding";
  best.reason = r.str();
  return best;
}

SpeciesGuess guessSpecies(const DataFrame& var, const GeneColumnGuess& genes) {
  static const std::pair<const char*, const char*> prefixes[] = {
      {"ENSMUSG", "mouse"},   {"ENSDARG", "zebrafish"},         {"ENSXETG", "frog"},
      {"ENSSSCG", "pig"},     {"ENSMFAG", "macaca_fascicularis"}, {"ENSMMUG", "macaca_mulatta"},
      {"ENSMICG", "mouse_lemur"}, {"ENSG0", "human"}};
  // Ensembl ids anywhere in var decide the species outright.
  std::vector<std::vector<std::string>> lists{var.index};
  for (const auto& c : var.columns)
    if (c.kind == ColumnKind::String || c.kind == ColumnKind::Categorical) lists.push_back(columnStrings(c));
  for (const auto& names : lists) {
    if (ensemblFraction(names) < 0.5) continue;
    std::map<std::string, size_t> counts;
    for (const auto& s : names)
      for (const auto& p : prefixes)
        if (s.rfind(p.first, 0) == 0) { ++counts[p.second]; break; }
    std::string sp = "unknown";
    size_t most = 0;
    for (const auto& kv : counts)
      if (kv.second > most) { most = kv.second; sp = kv.first; }
    return {sp, "Ensembl gene ids with the " + sp + " prefix"};
  }
  const std::vector<std::string>* symbols = &var.index;
  std::vector<std::string> col;
  if (!genes.column.empty())
    if (const Column* c = var.find(genes.column)) { col = columnStrings(*c); symbols = &col; }
  size_t upper = 0, title = 0, lower = 0, total = 0;
  for (const auto& s : *symbols) {
    size_t letters = 0, ups = 0;
    for (unsigned char ch : s)
      if (std::isalpha(ch)) { ++letters; ups += std::isupper(ch) != 0; }
    if (letters < 2) continue;
    ++total;
    if (ups == letters) ++upper;
    else if (std::isupper(static_cast<unsigned char>(s[0])) && ups == 1) ++title;
    else if (ups == 0) ++lower;
  }
  if (total == 0) return {"unknown", "no gene symbols to judge from"};
  auto pct = [&](size_t k) { return std::to_string(static_cast<int>(100.0 * k / total + 0.5)) + "%"; };
  if (upper * 10 >= total * 7) return {"human", pct(upper) + " of symbols are upper-case (human-style, e.g. DCN)"};
  if (title * 10 >= total * 7) return {"mouse", pct(title) + " of symbols are title-case (mouse-style, e.g. Dcn)"};
  if (lower * 10 >= total * 7) return {"zebrafish", pct(lower) + " of symbols are lower-case (zebrafish-style)"};
  return {"unknown", "mixed symbol capitalisation; choose the species explicitly"};
}

DatasetSummary summarize(const Dataset& ds) {
  DatasetSummary s;
  s.path = ds.path();
  s.format = ds.format();
  s.cells = ds.cells();
  s.genes = static_cast<int64_t>(ds.var().rows());
  s.matrices = ds.matrices();
  try {
    CountsChoice c = chooseCountsMatrix(ds);
    s.countsKey = c.key;
    s.countsReason = c.reason;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::NotCounts && e.kind() != ErrorKind::NegativeValue) throw;
    s.countsReason = e.what();
  }
  for (const auto& c : ds.obs().columns) s.obsColumns.push_back({c.name, columnKindName(c.kind), c.categories.size()});
  for (const auto& c : ds.var().columns) s.varColumns.push_back({c.name, columnKindName(c.kind), c.categories.size()});
  s.obsmKeys = ds.obsmKeys();
  s.geneColumn = guessGeneColumn(ds.var());
  s.species = guessSpecies(ds.var(), s.geneColumn);
  return s;
}

static const MatrixInfo* findMatrix(const DatasetSummary& s, const std::string& key) {
  for (const auto& m : s.matrices)
    if (m.key == key) return &m;
  return nullptr;
}

std::string toText(const DatasetSummary& s) {
  std::ostringstream o;
  o << "file:     " << s.path << " (" << s.format << ")\n";
  o << "cells:    " << s.cells << "\n";
  o << "genes:    " << s.genes << "\n";
  o << "matrices:\n";
  for (const auto& m : s.matrices) {
    o << "  " << m.key << ": " << m.rows << " x " << m.cols << ", " << storageName(m.storage) << ", "
      << dtypeName(m.dtype);
    if (m.nnz >= 0) o << ", " << m.nnz << " stored values";
    o << "\n";
  }
  if (const MatrixInfo* m = findMatrix(s, s.countsKey))
    o << "counts:   " << s.countsKey << " (" << storageName(m->storage) << ", " << dtypeName(m->dtype)
      << "): " << s.countsReason << "\n";
  else
    o << "counts:   none found: " << s.countsReason << "\n";
  auto cols = [&](const char* title, const std::vector<ColumnSummary>& v) {
    o << title << " (" << v.size() << "):\n";
    for (const auto& c : v) {
      o << "  " << c.name << ": " << c.kind;
      if (c.kind == std::string("categorical")) o << " (" << c.categories << " categories)";
      o << "\n";
    }
  };
  cols("obs columns", s.obsColumns);
  cols("var columns", s.varColumns);
  o << "obsm:     ";
  for (size_t i = 0; i < s.obsmKeys.size(); ++i) o << (i ? ", " : "") << s.obsmKeys[i];
  o << (s.obsmKeys.empty() ? "none\n" : "\n");
  o << "gene symbols: " << (s.geneColumn.column.empty() ? "var_names" : s.geneColumn.column) << " ("
    << s.geneColumn.reason << ")\n";
  o << "species:  " << s.species.species << " (" << s.species.reason << ")\n";
  return o.str();
}

std::string toJson(const DatasetSummary& s) {
  std::ostringstream o;
  o << "{\n  \"path\": " << jsonQuote(s.path) << ",\n  \"format\": " << jsonQuote(s.format)
    << ",\n  \"cells\": " << s.cells << ",\n  \"genes\": " << s.genes << ",\n  \"matrices\": [";
  for (size_t i = 0; i < s.matrices.size(); ++i) {
    const auto& m = s.matrices[i];
    o << (i ? ", " : "") << "{\"key\": " << jsonQuote(m.key) << ", \"storage\": "
      << jsonQuote(storageName(m.storage)) << ", \"dtype\": " << jsonQuote(dtypeName(m.dtype))
      << ", \"rows\": " << m.rows << ", \"cols\": " << m.cols << ", \"nnz\": " << m.nnz << "}";
  }
  o << "],\n  \"counts\": {\"key\": " << (s.countsKey.empty() ? "null" : jsonQuote(s.countsKey));
  if (const MatrixInfo* m = findMatrix(s, s.countsKey))
    o << ", \"storage\": " << jsonQuote(storageName(m->storage)) << ", \"dtype\": " << jsonQuote(dtypeName(m->dtype));
  o << ", \"reason\": " << jsonQuote(s.countsReason) << "},\n";
  auto cols = [&](const char* name, const std::vector<ColumnSummary>& v) {
    o << "  " << jsonQuote(name) << ": [";
    for (size_t i = 0; i < v.size(); ++i)
      o << (i ? ", " : "") << "{\"name\": " << jsonQuote(v[i].name) << ", \"kind\": " << jsonQuote(v[i].kind)
        << ", \"categories\": " << v[i].categories << "}";
    o << "],\n";
  };
  cols("obs_columns", s.obsColumns);
  cols("var_columns", s.varColumns);
  o << "  \"obsm\": [";
  for (size_t i = 0; i < s.obsmKeys.size(); ++i) o << (i ? ", " : "") << jsonQuote(s.obsmKeys[i]);
  o << "],\n  \"gene_symbols\": {\"column\": "
    << (s.geneColumn.column.empty() ? "null" : jsonQuote(s.geneColumn.column)) << ", \"looks_like\": "
    << jsonQuote(s.geneColumn.looksLike) << ", \"symbol_fraction\": " << s.geneColumn.symbolFraction
    << ", \"reason\": " << jsonQuote(s.geneColumn.reason) << "},\n  \"species\": {\"guess\": "
    << jsonQuote(s.species.species) << ", \"reason\": " << jsonQuote(s.species.reason) << "}\n}\n";
  return o.str();
}

}  // namespace uce
