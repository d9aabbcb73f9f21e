#pragma once
// The synthetic world behind uce::SynthAtlas, private to core: cell types, tissues, genes of
// each species and the gene-program model. synth.cpp builds it; synth_datasets.cpp samples
// cells from it.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "uce/core/synth.h"

namespace uce::synth {

struct CellTypeDef {
  const char* name;
  int coarse;                         // index into coarseNames()
  double size;                        // library-size factor
  std::vector<const char*> markers;   // human symbols; absent ones are skipped
};

struct TissueDef {
  const char* name;
  const char* disease;                // label of the diseased batch
  double norn;                        // share of Norn cells
  std::vector<std::pair<const char*, double>> composition;  // other types, relative weights
};

const std::vector<const char*>& coarseNames();
const std::vector<std::vector<const char*>>& coarseMarkers();
const std::vector<CellTypeDef>& cellTypeDefs();
const std::vector<TissueDef>& tissueDefs();
int cellTypeIndex(const std::string& name);  // -1 if unknown
const char* nornTypeName();                  // "Norn cell"

// Sparse program: (concept, log-fold in natural-log units).
using Program = std::vector<std::pair<int32_t, double>>;

struct SpeciesGenes {
  std::string name;                  // "human", "mouse"
  std::string fileStem;              // "Homo_sapiens.GRCh38"
  std::string idPrefix;              // "ENSG", "ENSMUSG"
  std::vector<std::string> symbols;  // token order, as the species writes them
  std::vector<int32_t> geneConcept;  // gene -> concept
  std::vector<std::string> chrom;
  std::vector<int64_t> start;
  std::vector<double> divergence;    // log-mean shift against the concept (natural log)
  std::vector<double> theta;         // negative-binomial dispersion (size), >= 1
  std::vector<int32_t> varOrder;     // var column -> gene (the order genes appear in .h5ad)
};

// A concept is a gene "function" shared by homologs: each human gene is one, each mouse-only
// gene is one more.
struct World {
  SynthOptions opt;
  int32_t nConcepts = 0;
  // Baseline log-mean of concept c: sigma * baseZ[c] (z clipped to [-3, 2.5]); housekeeping
  // genes sit above every other gene: max(2.5 sigma, 4.5) + hkJitter[c] (natural log, jitter
  // 0.3-1.3).
  std::vector<double> baseZ;
  std::vector<uint8_t> housekeeping;
  std::vector<double> hkJitter;
  // [type][concept] log-folds of the random coarse and fine program genes, in z units (scaled
  // by sigma like the baseline); baseline + fold is capped at z = 2.5.
  std::vector<std::vector<double>> typeFold;
  // [type][concept] level of the named markers of the type (its coarse type's and its own), in
  // z units; 0 = not a marker of this type. Markers use a spread of at least 1.8, so they stay
  // well detected in 20,000-gene cells too.
  std::vector<std::vector<double>> markerLevel;
  Program diseaseProgram;          // natural-log folds, in every cell of a diseased batch
  int32_t epoConcept = -1;         // EPO: falls in Norn cells under chronic kidney disease
  double sigma = 1.0;              // calibrated spread of baselines
  std::vector<SpeciesGenes> species;
  SynthAssets assets;

  // Log-mean of concept c in cell type t at spread s (before species/batch/disease effects).
  double logMean(int32_t c, size_t t, double s) const {
    const size_t i = static_cast<size_t>(c);
    if (housekeeping[i]) return std::max(2.5 * s, 4.5) + hkJitter[i];
    const double level = markerLevel[t][i];
    if (level > 0) return std::max(s, 1.8) * level;
    return s * std::min(baseZ[i] + typeFold[t][i], 2.5);
  }
};

// Median library size (UMIs) and its log-normal spread.
constexpr double kMedianLibrary = 2500.0;
constexpr double kLibrarySdLog = 0.45;
// Genes whose expected count in a cell type is below this are drawn as Poisson.
constexpr double kPoissonBelow = 0.1;
constexpr double kAmbient = 0.02;

// Expected share of zeros for human cell types at baseline spread sigma.
double expectedZeroFraction(const World& w, double sigma);

// Writes the datasets (synth_datasets.cpp).
std::vector<SynthDatasetInfo> writeWorldDatasets(const World& w, const std::string& outDir,
                                                 const SynthProgress& progress);
std::vector<std::pair<std::string, std::string>> selectedDatasets(const SynthOptions& opt);

}  // namespace uce::synth
