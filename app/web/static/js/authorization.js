import { signedIn } from "./api.js";

await signedIn();
