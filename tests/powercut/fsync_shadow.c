/* Copy-at-fsync, for the power-cut test (tests/test_power_cut.py).
 *
 * Preloaded into the agent: after every successful fsync() or fdatasync() of a regular file
 * on the device being watched, the file's whole content is copied to $FSYNC_SHADOW/<inode>.
 * A "power cut" then puts every file back to its content at its last sync (see the test):
 * what the storage had been told to keep, and nothing it had merely been handed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void shadow(int fd) {
    const char *dir = getenv("FSYNC_SHADOW");
    const char *dev = getenv("FSYNC_SHADOW_DEV");
    struct stat st;
    if (!dir || !dev || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
    if ((unsigned long long)st.st_dev != strtoull(dev, NULL, 10)) return;
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%llu", dir, (unsigned long long)st.st_ino);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0) return;
    char buf[65536];
    off_t at = 0;
    ssize_t n;
    while ((n = pread(fd, buf, sizeof buf, at)) > 0) {
        if (write(out, buf, (size_t)n) != n) break;
        at += n;
    }
    close(out);
    rename(tmp, path);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    int rc = real(fd);
    if (rc == 0) shadow(fd);
    return rc;
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    int rc = real(fd);
    if (rc == 0) shadow(fd);
    return rc;
}
