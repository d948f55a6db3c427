#!/bin/sh
cat /usr/share/greeting.txt
