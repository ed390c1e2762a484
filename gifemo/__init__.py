"""gifemo: emotion recognizers for animated GIFs (GIFGIF+, Chen & Picard 2017)."""
