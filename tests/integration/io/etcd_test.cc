#include <gtest/gtest.h>
TEST(EtcdOnOverlay, Placeholder) {}
