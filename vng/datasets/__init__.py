"""Dataset sources (DAVIS, YouTube-VOS, Point-VOS, VNG, synthetic) and their Hugging Face ``datasets`` conversion."""
