#!/bin/bash
# Smoke job: a failing job must come back as verdict 3.
echo "this job fails on purpose"
exit 3
