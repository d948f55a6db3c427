#include "registry_fixture.hpp"
