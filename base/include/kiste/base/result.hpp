#pragma once
#include <kiste/base/error.hpp>
