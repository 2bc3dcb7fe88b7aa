// Linux interfaces that Swift's Glibc module does not export.
#ifndef UBG_CSYSTEM_SHIM_H
#define UBG_CSYSTEM_SHIM_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#endif
