#!/bin/sh
# Placeholder: the http sample's test is being written.
exit 77
