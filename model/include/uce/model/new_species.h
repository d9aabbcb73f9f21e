#pragma once
// Embedding a species the token table lacks, as the public release's new-species recipe does
// (data_proc/Create New Species Files.ipynb): the species' protein embeddings become new token
// rows, its chromosomes new chromosome-token rows drawn N(0,1) after torch.manual_seed(seed)
// (the release asks for the NCBI taxonomy id as seed, so that everyone who adds the species
// draws the same rows), and its chromosome codes are the sorted unique chromosome names of its
// own position file.
//
// The release writes a separate token file per new species ([4 special rows, its genes, its
// chromosomes]); we append the same rows to the bundle's table instead, so one bundle serves
// every species:
//   all_tokens.torch       [old rows | new genes (offset = old row count) | new chromosomes]
//   species_offsets.pkl    old entries + {species: offset}
//   <species>_to_chrom_pos.csv   gene_symbol, chromosome, start, species (the release's file)
//   protein_embeddings/<the .pt given>   byte copy
//   new_species.csv        one row per added species (see AddedSpecies in assets.h)
// species_chrom.csv and every other file are kept as they are (hard links where possible), so
// the tokens of every species already there, genes and chromosomes, stay exactly the same.
// Each added species sees the very vectors the release's recipe gives it, hence the same
// embeddings.
#include <cstdint>
#include <string>
#include <vector>

namespace uce::model {

struct NewSpeciesOptions {
  std::string name;               // used with --species; letters, digits, '_', '-', '.'
  std::string proteinEmbeddings;  // torch.save'd dict gene symbol -> float tensor [token_dim]
  std::string positionsCsv;       // gene_symbol, chromosome, start (+ species: rows of `name`)
  int64_t seed = -1;              // seed of the chromosome rows; < 0 = derived from the name
  std::string modelFile;          // token table source when the bundle has no all_tokens.torch
};

struct NewSpeciesReport {
  std::string dir;                // the extended bundle
  bool reused = false;            // dir already held this extension: nothing was recomputed
  int64_t offset = 0;             // first gene row of the species
  int64_t genes = 0;              // its gene rows (keys of the .pt)
  int64_t chromTokenOffset = 0;   // first of its chromosome rows
  int64_t chromTokens = 0;
  uint64_t seed = 0;
  // Filled when the extension is computed (0 when reused):
  int64_t tokens = 0;                     // rows of the extended table
  int64_t genesWithoutPosition = 0;       // .pt genes the position CSV lacks (never drawn)
  int64_t positionsWithoutEmbedding = 0;  // CSV genes the .pt lacks (ignored)
};

// Writes baseDir extended by one species into outDir (created atomically: a temporary folder
// renamed into place; baseDir is never modified). When outDir already holds this very
// extension (same species, same input files, same base bundle), returns at once with
// reused = true. Throws uce::Error naming the file at fault: a .pt that is not a dict of
// str -> tensor [token_dim], a CSV without gene_symbol/chromosome/start, a species already in
// the bundle, an outDir that holds something else.
NewSpeciesReport addSpecies(const std::string& baseDir, const NewSpeciesOptions& options,
                            const std::string& outDir);

// The seed used when none is given: FNV-1a of the name (stable across runs and machines).
uint64_t defaultSpeciesSeed(const std::string& name);

}  // namespace uce::model
