import sys

from keras_clip.cli import main

sys.exit(main())
