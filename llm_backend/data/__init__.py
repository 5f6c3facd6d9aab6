"""Getting user data in: file reading with encodings and limits, seeded sampling, label sets, language detection."""
