// Preloaded into Node under qemu-user by the arm64 prebuild checks (scripts/cross-runtimes.mjs), never
// shipped. qemu-user (7.2 and 10.0 alike) does not translate the IPV6_DONTFRAG socket option and
// answers ENOPROTOOPT, which MsQuic's datapath treats as fatal when it opens its dual-stack socket: no
// listener or connection could start under emulation. On a real kernel the option exists; on loopback
// (the only traffic of the checks) the don't-fragment bit changes nothing. Every other call, and this
// one wherever qemu does translate it, goes to the kernel unchanged.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int setsockopt(int fd, int level, int name, const void *value, socklen_t length) {
  long result = syscall(SYS_setsockopt, fd, level, name, value, length);
  if (result == -1 && errno == ENOPROTOOPT && level == IPPROTO_IPV6 && name == IPV6_DONTFRAG) return 0;
  return (int)result;
}
