#pragma once
// Differential expression and group comparisons on library-size-normalised log1p counts.
//
// Expression model (the same for every call here): the counts matrix is the one
// chooseCountsMatrix() picks (or the one named); each cell is scaled to `targetSum` counts and
// log1p'ed, in double precision:  x = log1p(count / librarySize * targetSum). Cells with no
// counts stay at zero (as scanpy's normalize_total leaves them). Library sizes are over all
// genes of that matrix.
//
// Tests, per gene, between the cells of a group and those of a reference (the rest, or another
// group; cells whose label is missing are in neither):
//  * Wilcoxon rank-sum: normal approximation with tie correction, two-sided, no continuity
//    correction; equal to scipy.stats.mannwhitneyu(in, out, method="asymptotic",
//    use_continuity=False) and to scanpy's rank_genes_groups(method="wilcoxon",
//    tie_correct=True). score = z (positive: higher in the group).
//  * Welch t-test: scipy.stats.ttest_ind(in, out, equal_var=False). score = t.
// Ranks are taken on the normalised values before log1p (for a ratio, on (normA+1)/(normB+1)):
// log1p is strictly increasing, so these are the exact ranks of the log values, whereas log1p
// rounded to a double can merge two distinct values into a tie, differently in numpy's SIMD
// log1p and in libm's. scipy on the same normalised values gives the same p-values to ~1e-12.
// Genes with no variation among the compared cells (e.g. never detected) cannot be tested;
// they are kept with p = 1 (scipy returns NaN there). Benjamini-Hochberg adjusts over all genes.
//
// log2 fold change: log2((mean(expm1 x) in group + 1e-9) / (mean(expm1 x) in reference + 1e-9)),
// i.e. of the arithmetic means of the normalised counts per `targetSum`. (scanpy instead takes
// expm1 of the mean of the log values, a geometric-like mean, which is smaller for genes
// detected in few cells; meanLogIn/meanLogOut below give that version if needed.)
// pct: share of cells with count > 0.
//
// Memory: genes are processed in column blocks whose non-zero values (8 bytes each) fit
// `maxBlockBytes`; each block is one pass over the cells in row blocks (Dataset::readRows). So a
// Wilcoxon run reads the file 1 + ceil(nnz * 8 / maxBlockBytes) times; a t-test reads it once.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "uce/core/dataset.h"

namespace uce::analysis {

enum class DeMethod { Wilcoxon, TTest };
const char* deMethodName(DeMethod m);  // "wilcoxon", "t-test"
DeMethod parseDeMethod(const std::string& s);  // throws InvalidArgument naming the choices

// ---- Small steps, over plain arrays (each checked against scipy in tests/analysis/test_de.cpp).

struct TestResult {
  double statistic = 0;  // z (Wilcoxon) or t (Welch); 0 when untestable
  double pval = 1;       // two-sided; 1 when untestable
};

// Wilcoxon rank-sum of two samples (any order, ties allowed).
TestResult wilcoxonRankSum(const double* a, int64_t na, const double* b, int64_t nb);

// The same from sufficient statistics: na / nb cells, of which the non-zero values are
// aNonzero / bNonzero, each sorted ascending; every other value is 0 and all values are >= 0.
// This is what the streaming path uses: zeros are never stored.
TestResult wilcoxonSparseSorted(int64_t na, const double* aNonzero, int64_t aNnz,
                                int64_t nb, const double* bNonzero, int64_t bNnz);

// Welch t-test from means and sample variances (ddof = 1) of na and nb values.
TestResult welchTTest(double meanA, double varA, int64_t na, double meanB, double varB, int64_t nb);
TestResult welchTTest(const double* a, int64_t na, const double* b, int64_t nb);

// Two-sided tail probabilities. Accurate to ~1e-12 relative down to the smallest doubles.
double normalTwoSided(double z);             // 2 * P(Z > |z|)
double studentTwoSided(double t, double df); // 2 * P(T_df > |t|), df > 0 (real-valued)
// Regularised incomplete beta function I_x(a, b), a, b > 0, x in [0, 1].
double incompleteBeta(double a, double b, double x);

// Benjamini-Hochberg adjusted p-values in input order (as statsmodels' fdr_bh), capped at 1.
std::vector<double> benjaminiHochberg(const std::vector<double>& p);

// ---- Cell selection.

// Labels of an obs column per cell ("" = missing) and the groups present, in category order
// (categorical) or sorted order (others). Throws InvalidArgument naming the columns there are.
struct Grouping {
  std::string column;
  std::vector<int32_t> codes;        // [cells] index into groups, -1 = missing
  std::vector<std::string> groups;
  std::vector<int64_t> sizes;        // cells per group
  int32_t find(const std::string& g) const;  // -1 when absent
  std::string describe(size_t maxGroups = 30) const;  // "a (120 cells), b (4 cells), ..."
};
Grouping groupingOf(const Dataset& ds, const std::string& column);
// The same, with cells outside `withinColumn == withinValue` marked missing (no-op when the column
// is ""). Throws InvalidArgument for an unknown column or value, listing what there is.
Grouping groupingWithin(const Dataset& ds, const std::string& column, const std::string& withinColumn,
                        const std::string& withinValue);

// ---- Rank genes: one group against a reference.

struct DeOptions {
  std::string groupby;              // obs column
  std::string group;                // the group tested
  std::string reference = "rest";   // "rest" (every other labelled cell) or another group
  DeMethod method = DeMethod::Wilcoxon;
  // Only cells whose obs column withinColumn equals withinValue (both "" = all cells), e.g.
  // disease against normal within one cell type. Libraries are still each cell's own.
  std::string withinColumn, withinValue;
  std::string counts;               // counts matrix key; "" = chooseCountsMatrix's guess
  std::string geneColumn;           // var column with gene names; "" = var index
  double targetSum = 1e4;           // counts per cell after normalisation
  int64_t maxBlockBytes = 256ll << 20;  // values held at once by the Wilcoxon gene blocks
  int64_t rowBlock = 4096;          // cells read per block
  int threads = 0;                  // ranking threads; 0 = all cores
};

struct DeGene {
  std::string gene;
  int64_t index = 0;          // column in the counts matrix
  double statistic = 0;       // z or t, positive = higher in the group
  double pval = 1, pvalAdj = 1;
  double log2fc = 0;
  double pctIn = 0, pctOut = 0;
  double meanIn = 0, meanOut = 0;        // mean of expm1(x): normalised counts per targetSum
  double meanLogIn = 0, meanLogOut = 0;  // mean of x = log1p(normalised)
};

struct DeResult {
  std::string countsKey, countsReason;
  std::string group, reference;
  DeMethod method = DeMethod::Wilcoxon;
  int64_t cellsIn = 0, cellsOut = 0;
  int passes = 0;              // reads of the counts matrix
  std::vector<DeGene> genes;   // every gene, by p-value (ties: larger |statistic| first)
};

// Throws uce::Error naming the file for an unknown column / group (listing what there is), a
// group or reference with fewer than 2 cells, group == reference, negative counts.
DeResult rankGenes(const Dataset& ds, const DeOptions& options);

// "gene,pval,pval_adj,log2fc,pct_in,pct_out,mean_in,mean_out" and one line per gene, in result
// order (mean_in / mean_out: meanIn / meanOut, normalised counts per targetSum).
std::string deCsv(const DeResult& r);

// ---- Chosen genes and gene ratios across the groups of a column (paper Fig. 4e).
//
// A gene's per-cell value is x = log1p(normalised) as above. A ratio A:B's per-cell value is
// log2((normA + 1) / (normB + 1)) of the normalised counts (= (xA - xB) / ln 2): symmetric, 0 for
// cells with neither gene, and defined for every cell. For each feature and each comparison a
// row gives both sides' cell counts, mean and median of the per-cell value, share of cells expressing
// (gene: count > 0; ratio: either gene > 0), a log2 fold change (gene: as rankGenes; ratio:
// difference of the mean log2 ratios) and a p-value (Wilcoxon or Welch, as above);
// Benjamini-Hochberg adjusts over all rows of the table.

enum class Comparison {
  VsRest,       // each group against every other labelled cell
  VsReference,  // each other group against `reference`
  Pairwise,     // each unordered pair of groups (first in group order is "group")
};

struct FeatureOptions {
  std::string groupby;
  std::vector<std::string> genes;                            // matched exactly, else case-insensitively
  std::vector<std::pair<std::string, std::string>> ratios;   // numerator, denominator
  Comparison comparison = Comparison::VsRest;
  std::string reference;        // VsReference: the reference group
  std::string onlyGroup;        // "" = all groups; else only comparisons involving this group
  std::string withinColumn, withinValue;  // as DeOptions: only cells with this obs value
  DeMethod method = DeMethod::Wilcoxon;
  std::string counts, geneColumn;
  double targetSum = 1e4;
  int64_t rowBlock = 4096;
};

struct FeatureComparison {
  std::string feature;             // "EPAS1" or "EPAS1:EGLN1" (names as in the file)
  std::string group, reference;    // reference: a group name or "rest"
  int64_t nGroup = 0, nReference = 0;
  double meanGroup = 0, meanReference = 0;
  double medianGroup = 0, medianReference = 0;
  double pctGroup = 0, pctReference = 0;
  double log2fc = 0;
  double statistic = 0, pval = 1, pvalAdj = 1;
};

struct FeatureResult {
  std::string countsKey;
  DeMethod method = DeMethod::Wilcoxon;
  std::vector<FeatureComparison> rows;  // feature order, then comparison order
};

// Throws uce::Error for unknown genes (suggesting case-insensitive matches), columns, groups.
FeatureResult compareFeatures(const Dataset& ds, const FeatureOptions& options);

// "feature,group,reference,n_group,n_reference,mean_group,mean_reference,median_group,
//  median_reference,pct_group,pct_reference,log2fc,pval,pval_adj"
std::string featureCsv(const FeatureResult& r);

}  // namespace uce::analysis
