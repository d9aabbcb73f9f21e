#pragma once
// Removing a folder and everything in it, without std::filesystem::remove_all.
//
// PyTorch's own LibTorch builds from 2.5 on (the pip wheels and the libtorch archives a GPU
// server builds against) export a statically linked copy of libstdc++'s
// std::filesystem::recursive_directory_iterator (pytorch/pytorch#133437). The system
// libstdc++'s remove_all walks a folder with that iterator, so in a process linked to both it
// can run the iterator of one libstdc++ build with the rest of the other: `uce train` crashed
// (SIGSEGV) pruning its old checkpoints on an H200 server with PyTorch 2.11. This walks the
// folder with POSIX calls only.
#include <string>

namespace uce {

// Removes `path`: a file, a symbolic link (never what it points to) or a folder with
// everything under it. A path that does not exist is not an error. On failure returns false,
// leaves what it could not remove, and sets *error (when given) to the first failure, naming
// the entry ("<entry>: <reason>").
bool removeTree(const std::string& path, std::string* error = nullptr);

}  // namespace uce
