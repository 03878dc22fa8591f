/*
 * record.h - the call record shared by the HIP and HSA test doubles.
 *
 * Each double includes it and gets its own static copy, so the two shared
 * objects stay independent (neither links the other). If FAKE_HIP_LOG names
 * a file, record() appends one line per call, formatted into a stack buffer
 * (no heap) and written with a single write() on an O_APPEND descriptor, so
 * lines from many threads and processes never interleave.
 */
#ifndef RMCP_TEST_DOUBLE_RECORD_H
#define RMCP_TEST_DOUBLE_RECORD_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_once_t record_once = PTHREAD_ONCE_INIT;
static int record_fd = -1;

static void record_open(void)
{
    const char *path = getenv("FAKE_HIP_LOG");
    if (path && *path)
        record_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

__attribute__((format(printf, 1, 2))) static void record(const char *fmt, ...)
{
    pthread_once(&record_once, record_open);
    if (record_fd < 0)
        return;
    char line[640];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)(sizeof line - 2);
    line[n++] = '\n';
    ssize_t w;
    do {
        w = write(record_fd, line, (size_t)n);
    } while (w < 0 && errno == EINTR);
}

#endif
