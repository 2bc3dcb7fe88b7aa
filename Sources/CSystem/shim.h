// Linux interfaces that Swift's Glibc module does not export.
#ifndef UBG_CSYSTEM_SHIM_H
#define UBG_CSYSTEM_SHIM_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <time.h>

/* glibc's join with a deadline (a GNU extension: declared here, as Swift's Glibc module is built
 * without _GNU_SOURCE). */
int pthread_timedjoin_np(pthread_t thread, void **retval, const struct timespec *abstime);

static inline int ubg_join_until(pthread_t thread, const struct timespec *deadline) {
    return pthread_timedjoin_np(thread, NULL, deadline);
}
#endif
