#!/bin/sh
# Placeholder: the chat sample's test is being written.
exit 77
