// Generates the test JWKS (public) and private keys into the given directory.
import { generateKeys } from './lib.mjs';
generateKeys(process.argv[2]);
