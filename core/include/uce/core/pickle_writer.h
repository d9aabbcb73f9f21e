#pragma once
// A tiny Python pickle writer for the one shape the UCE assets need: species_offsets.pkl, a
// dict str -> int. The bytes equal CPython's pickle.dumps(d, protocol=2) for the same items in
// the same order (memo puts included), so any unpickler that reads the release's file reads ours.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace uce {

// items: keys (UTF-8) and values in insertion order; keys should be unique.
std::string pickleDictStrInt(const std::vector<std::pair<std::string, int64_t>>& items);

}  // namespace uce
