#include "uce/core/remove_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace uce {
namespace {

struct Failure {
  std::string entry;
  int err = 0;
  void note(const std::string& what, int e) {
    if (err == 0) {
      entry = what;
      err = e;
    }
  }
};

// Removes `name` in the folder `dirfd` (shown as `shown` in errors); recurses into folders.
void removeAt(int dirfd, const char* name, const std::string& shown, Failure& failure) {
  if (::unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return;
  const int unlinkErr = errno;
  if (unlinkErr != EISDIR && unlinkErr != EPERM) {  // Linux says EISDIR for a folder; POSIX allows EPERM
    failure.note(shown, unlinkErr);
    return;
  }
  const int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e != ENOENT) failure.note(shown, e == ENOTDIR || e == ELOOP ? unlinkErr : e);
    return;
  }
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    failure.note(shown, errno);
    ::close(fd);
    return;
  }
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(dir);
    if (e == nullptr) {
      if (errno != 0) failure.note(shown, errno);
      break;
    }
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    removeAt(::dirfd(dir), e->d_name, shown + "/" + e->d_name, failure);
  }
  ::closedir(dir);
  if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) failure.note(shown, errno);
}

}  // namespace

bool removeTree(const std::string& path, std::string* error) {
  if (path.empty()) return true;
  Failure failure;
  removeAt(AT_FDCWD, path.c_str(), path, failure);
  if (failure.err == 0) return true;
  if (error) *error = failure.entry + ": " + std::strerror(failure.err);
  return false;
}

}  // namespace uce
