#include <catch2/catch.hpp>

#include "test/unit/shim/world.hpp"
