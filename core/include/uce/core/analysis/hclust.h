#pragma once
// Agglomerative hierarchical clustering of a few points (centroids) under Euclidean distance,
// with the output of scipy.cluster.hierarchy.linkage: the same merge distances and the same
// cluster numbering, so the tree can be drawn by SciPy or by our dendrogram view alike.
#include <cstdint>
#include <string>
#include <vector>

namespace uce::analysis {

enum class Linkage { Average, Ward, Complete, Single };

// Parses "average", "ward", "complete", "single"; throws uce::Error(InvalidArgument) otherwise.
Linkage parseLinkage(const std::string& name);
const char* linkageName(Linkage method);

// One merge of the SciPy linkage matrix: clusters a < b (leaves are 0..n-1, the cluster made
// by row i is n + i), merge distance, and number of leaves below.
struct Merge {
  int64_t a = 0, b = 0;
  double distance = 0;
  int64_t size = 0;
};

// points: [n, dim] row-major (double). n >= 2. O(n^2) memory and time (nearest-neighbour
// chain, as SciPy does for these methods), then merges sorted by distance (stable) and
// renumbered exactly as scipy.cluster.hierarchy.linkage does.
// Ward uses Lance-Williams on Euclidean (not squared) distances, as SciPy does.
std::vector<Merge> hierarchicalClustering(const std::vector<double>& points, int64_t n, int64_t dim,
                                          Linkage method);

// "a,b,distance,size" header and n-1 rows; numpy.loadtxt(path, delimiter=',', skiprows=1)
// gives SciPy's Z.
std::string linkageCsv(const std::vector<Merge>& merges);

// Newick tree with leaf names; branch length = parent merge distance - child merge distance
// (leaves at 0), so the root-to-leaf depth equals the root's merge distance. Names that hold
// Newick punctuation or spaces are single-quoted.
std::string newick(const std::vector<Merge>& merges, const std::vector<std::string>& names);

}  // namespace uce::analysis
