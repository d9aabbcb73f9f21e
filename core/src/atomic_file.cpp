#include "uce/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "uce/core/error.h"

namespace uce {

void writeFileAtomic(const std::string& path, const std::string& bytes) {
  writeFileAtomic(path, [&bytes](const ByteSink& write) { write(bytes.data(), bytes.size()); });
}

void writeFileAtomic(const std::string& path, const std::function<void(const ByteSink& write)>& produce) {
  const std::string tmp = path + ".tmp-" + std::to_string(static_cast<long long>(::getpid()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(ErrorKind::Io, path, std::string("cannot create file: ") + std::strerror(errno));
  auto abandon = [&] {
    ::close(fd);
    ::unlink(tmp.c_str());
  };
  const ByteSink write = [&](const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    size_t done = 0;
    while (done < n) {
      const ssize_t k = ::write(fd, p + done, n - done);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        const int err = errno;
        fail(ErrorKind::Io, path, std::string("cannot write file: ") + std::strerror(k < 0 ? err : ENOSPC));
      }
      done += static_cast<size_t>(k);
    }
  };
  try {
    produce(write);
  } catch (...) {
    abandon();
    throw;
  }
  const int synced = ::fsync(fd) == 0 ? 0 : errno;
  const int closed = ::close(fd) == 0 ? 0 : errno;
  if (synced || closed) {
    const int err = synced ? synced : closed;
    ::unlink(tmp.c_str());
    fail(ErrorKind::Io, path, std::string("cannot flush file to disk: ") + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(ErrorKind::Io, path, std::string("cannot rename the finished file into place: ") + std::strerror(err));
  }
}

}  // namespace uce
