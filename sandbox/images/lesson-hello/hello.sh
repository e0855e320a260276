#!/bin/sh
echo "Hello from the classroom registry!"
echo "This message came from a container started from the image 127.0.0.1:5000/library/hello."
