#!/bin/sh
# Placeholder: the resp sample's test is being written.
exit 77
