// Run-directory lock: an open-file-description lock (F_OFD_SETLK) on RUN_DIR/.lock, with the
// holder's pid written into the file. Probing uses F_OFD_GETLK, which tests without taking the
// lock, so a probe can never make a trainer starting at that moment fail.
#include "src/train/run_lock.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>

namespace muonlab {

namespace {

std::string lock_path(const std::string& run_dir) {
  return (std::filesystem::path(run_dir) / ".lock").string();
}

std::string holder_pid(int fd) {
  char buffer[32] = {0};
  ssize_t n = pread(fd, buffer, sizeof buffer - 1, 0);
  std::string pid = n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.empty() ? "unknown" : pid;
}

struct flock whole_file(short type) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 0;  // to the end of the file, however long
  return lock;
}

}  // namespace

RunLock::RunLock(const std::string& run_dir) {
  std::filesystem::create_directories(run_dir);
  const std::string path = lock_path(run_dir);
  fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error("run directory " + run_dir + ": cannot create " + path);
  struct flock lock = whole_file(F_WRLCK);
  if (fcntl(fd_, F_OFD_SETLK, &lock) != 0) {
    const int error = errno;
    if (error != EAGAIN && error != EACCES) {  // no lock support here (some FUSE or NFS mounts)
      close(fd_);
      fd_ = -1;
      return;  // train unlocked rather than not at all
    }
    std::string pid = holder_pid(fd_);
    close(fd_);
    fd_ = -1;
    throw std::runtime_error("run directory " + run_dir +
                             " is in use by another muonlab process (pid " + pid +
                             "); wait for it to finish or choose another train.out_dir");
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd_, 0) == 0 && pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // The pid is informational only; the lock itself is what counts.
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) close(fd_);  // closing the last descriptor of the description releases it
}

bool run_is_locked(const std::string& run_dir) {
  int fd = open(lock_path(run_dir).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock probe = whole_file(F_WRLCK);
  bool locked = fcntl(fd, F_OFD_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
  close(fd);
  return locked;
}

}  // namespace muonlab
