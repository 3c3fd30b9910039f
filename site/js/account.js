// /account/: sign in, create an account (then signed in at once), sign out. With `?next=` the
// driver goes back where they came from, on this site only.

import { auth } from "./api.js";
import { say } from "./dom.js";
import { clearProblems, onSubmit, showProblems, values } from "./forms.js";
import { mountHeader, param } from "./layout.js";

mountHeader();

const signInForm = document.getElementById("sign-in");
const signUpForm = document.getElementById("sign-up");
const signInAlert = document.getElementById("sign-in-alert");
const signUpAlert = document.getElementById("sign-up-alert");
const status = document.getElementById("page-status");

/** Where to go after signing in: `next` when it is a path on this origin, else nowhere. */
function nextUrl() {
  const next = param("next");
  if (!next.startsWith("/") || next.startsWith("//")) return null;
  try {
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.href : null;
  } catch {
    return null;
  }
}

function render() {
  const driver = auth.driver;
  document.getElementById("signed-in").hidden = !driver;
  document.getElementById("signed-out").hidden = Boolean(driver);
  document.getElementById("page-lead").hidden = Boolean(driver);
  if (driver) {
    document.getElementById("me-name").textContent = driver.name || "a driver";
    document.getElementById("me-email").textContent = driver.email || "email not loaded";
  }
}

function signedIn() {
  const next = nextUrl();
  if (next) {
    location.assign(next);
    return;
  }
  render();
  say(status, `Signed in as ${auth.driver?.name || "a driver"}.`);
  document.getElementById("signed-in-title").focus();
}

if (nextUrl() && !auth.signedIn) {
  document.getElementById("page-lead").textContent =
    "Sign in, or create an account, and you will go straight back to the charger.";
}
document.getElementById("signed-in-title").setAttribute("tabindex", "-1");

onSubmit(signInForm, async () => {
  clearProblems(signInForm, signInAlert);
  const { email, password } = values(signInForm);
  try {
    await auth.signIn(email, password);
    signedIn();
  } catch (error) {
    showProblems(signInForm, signInAlert, error);
    if (error.status === 401) {
      signInAlert.textContent = "The email or the password is not right.";
      document.getElementById("sign-in-password").focus();
    }
  }
});

onSubmit(signUpForm, async () => {
  clearProblems(signUpForm, signUpAlert);
  const { name, email, password } = values(signUpForm);
  try {
    await auth.signUp(name, email, password);
  } catch (error) {
    showProblems(signUpForm, signUpAlert, error);
    return;
  }
  try {
    await auth.signIn(email, password);
    signedIn();
  } catch (error) {
    showProblems(signUpForm, signUpAlert, error);
    signUpAlert.textContent = `Your account is ready, but signing in failed: ${signUpAlert.textContent}`;
  }
});

document.getElementById("sign-out").addEventListener("click", async () => {
  await auth.signOut();
  render();
  say(status, "You are signed out.");
});

auth.onChange(render);
render();
// The sign-in link of another page lands here even when already signed in: go straight on.
if (auth.signedIn && nextUrl()) location.replace(nextUrl());
