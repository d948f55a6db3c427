#pragma once
#include <unistd.h>

#include <gtest/gtest.h>

// Root tests skip, visibly, when not root: the skip reason shows in the ctest output.
#define KISTE_REQUIRE_ROOT()                                              \
  do {                                                                    \
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (real kernel features)"; \
  } while (0)
