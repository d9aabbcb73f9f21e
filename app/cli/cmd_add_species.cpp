// uce add-species: an asset bundle extended by a species the token table lacks, as the public
// release's new-species recipe (data_proc/Create New Species Files.ipynb) builds it: the
// species' protein embeddings become new token rows, its chromosomes new chromosome rows.
// The result is a complete bundle for `uce embed --assets OUT --species NAME`.
#include <cstdio>

#include "command.h"
#include "uce/core/error.h"
#include "uce/model/new_species.h"

namespace uce::cli {
namespace {

int runAddSpecies(const Args& args) {
  Options o(args, {}, {"assets", "species", "embeddings", "positions", "out", "seed", "model"});
  model::NewSpeciesOptions ns;
  const std::string base = o.require("assets");
  ns.name = o.require("species");
  ns.proteinEmbeddings = o.require("embeddings");
  ns.positionsCsv = o.require("positions");
  ns.seed = o.getInt("seed", -1);
  ns.modelFile = o.get("model");
  const std::string out = o.require("out");
  model::NewSpeciesReport r = model::addSpecies(base, ns, out);
  if (r.reused) {
    std::printf("%s already holds species '%s' made from these files: nothing to do\n", r.dir.c_str(), ns.name.c_str());
  } else {
    std::printf("species '%s': %lld gene tokens from row %lld, %lld chromosome tokens from row %lld (seed %llu)\n",
                ns.name.c_str(), static_cast<long long>(r.genes), static_cast<long long>(r.offset),
                static_cast<long long>(r.chromTokens), static_cast<long long>(r.chromTokenOffset),
                static_cast<unsigned long long>(r.seed));
    if (r.genesWithoutPosition > 0)
      std::printf("%lld genes have an embedding but no position and are never drawn\n",
                  static_cast<long long>(r.genesWithoutPosition));
    if (ns.seed < 0)
      std::printf("note: give --seed <NCBI taxonomy id> as the release's recipe asks, so that everyone who adds "
                  "this species draws the same chromosome tokens\n");
    std::printf("wrote %s (%lld tokens); the species already there keep their tokens\n", r.dir.c_str(),
                static_cast<long long>(r.tokens));
  }
  std::printf("embed with: uce embed --assets %s --species %s ...\n", r.dir.c_str(), ns.name.c_str());
  return 0;
}

Registrar reg{{"add-species", "extend an asset bundle by a species it lacks (protein embeddings + gene positions)",
               runAddSpecies}};

}  // namespace
}  // namespace uce::cli
